"""relearn-pipeline: ReLearn (unlearning via learning) as a Kedro project."""

__version__ = "0.1.0"
