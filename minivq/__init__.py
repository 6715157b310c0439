"""minivq: VQ-VAE and a PixelCNN prior over its codes, in NumPy + autograd.

Reading order: conv.py (primitives) -> stopgrad.py -> layers.py -> optim.py ->
quantize.py -> vqvae.py -> train.py -> pixelcnn.py -> sampling.
"""
from .backend import conv2d, conv_transpose2d, get_backend, set_backend, use_backend
from .stopgrad import stop_gradient, straight_through

__version__ = "0.1.0"
__all__ = ["conv2d", "conv_transpose2d", "get_backend", "set_backend", "stop_gradient", "straight_through",
           "use_backend"]
