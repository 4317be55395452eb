"""Valid request bodies, shared by the tests, the benchmark and the Bento check."""

HEALTHY = {
    "debt_ratio": 0.2,
    "current_ratio": 2.5,
    "operating_margin": 0.25,
    "return_on_assets": 0.15,
    "interest_coverage": 20.0,
}
UNHEALTHY = {
    "debt_ratio": 1.4,
    "current_ratio": 0.4,
    "operating_margin": -0.2,
    "return_on_assets": -0.1,
    "interest_coverage": -2.0,
}
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 6.9, "sepal_width": 3.1, "petal_length": 5.7, "petal_width": 2.3}
