"""gaia: transfer learning for object detection, as chainable commands.

Importing this package is cheap on purpose: `gaia --help` and shell completion must not pull in torch,
gensim or h5py. Heavy modules are imported by the code that needs them.
"""

__version__ = "0.1.0"
