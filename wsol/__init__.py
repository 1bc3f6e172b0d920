"""art-wsol: weakly supervised object localization with Attributional Robustness Training."""

__version__ = "0.1.0"
