"""What the Bento and image checks must have probed: every endpoint, in the order
``scripts.bento.verify.check_endpoints`` calls them, then every file of the web page."""

CHECKED_ROUTES = [
    "/predict_credit",
    "/predict_credit_batch",
    "/classify_iris",
    "/models",
    "/recommend_books",
    "/rate_book",
    "/rate_books",
    "/classify_mask",
    "/classify_masks",
    "/ui/",
    "/ui/app.js",
    "/ui/style.css",
    "/ui/favicon.svg",
    "/ui/cover-placeholder.svg",
]
