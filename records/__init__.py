"""The torch-free contract of results/<run>/."""
