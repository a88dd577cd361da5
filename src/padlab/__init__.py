"""padlab: a GPU machine as a notebook workstation for an iPad or any thin client."""

__version__ = "0.1.0"
