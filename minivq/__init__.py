"""minivq: VQ-VAE and a PixelCNN prior over its codes, in NumPy + autograd.

Reading order: conv.py (primitives) -> stopgrad.py -> layers.py -> optim.py ->
quantize.py -> vqvae.py -> train.py -> pixelcnn.py -> sampling.
"""
from .conv import conv2d, conv_transpose2d
from .stopgrad import stop_gradient, straight_through

__version__ = "0.1.0"
__all__ = ["conv2d", "conv_transpose2d", "stop_gradient", "straight_through"]
