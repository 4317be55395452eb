"""Store names of the bundle's models (imports nothing: any process may read them)."""

CREDIT_HEALTH = "credit_health"
IRIS = "iris"
BOOK_RATING = "book_rating"
MASK_CLASSIFIER = "mask_classifier"
