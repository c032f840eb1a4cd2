"""mddr_utils: the MDDR book's one source of code, ordered like the paper.

data (sections 3.1, 4.1), features (3.2, 4.3), model (3.3-3.4), losses (3.5), metrics (4.2),
train (4.3), device.
"""
__version__ = "0.1.0"
