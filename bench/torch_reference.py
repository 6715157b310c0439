"""The reference VQ-VAE and PixelCNN prior written in PyTorch, for the speed benchmark.

Same architectures as minivq's reference models, layer for layer and parameter for
parameter, but in PyTorch's own layout (activations NCHW, conv weights OIHW):

    VQ-VAE encoder  conv4x4 s2 p1 (1->32), ReLU, conv4x4 s2 p1 (32->64), ReLU,
                    conv3x3 p1 (64->64), 2 x ResBlock, ReLU, conv1x1 (64->d)
           quantizer K=64 codes of size d=16, beta=0.25, straight-through
           decoder  conv3x3 p1 (d->64), 2 x ResBlock, ReLU,
                    convT4x4 s2 p1 (64->32), ReLU, convT4x4 s2 p1 (32->1)
           ResBlock x + conv1x1(ReLU(conv3x3(ReLU(x))))  (64->32->64)
           loss     MSE(x_hat, x) + |sg[z_e] - e|^2 + beta |z_e - sg[e]|^2
                    (van den Oord et al. 2017, arXiv 1711.00937, Eq. 3)
    PixelCNN prior  embedding K->64, masked conv7x7 mask A (64->64), 6 x [ReLU,
                    masked conv3x3 mask B (64->64), add], ReLU, conv1x1 (64->64), ReLU,
                    conv1x1 (64->K); cross-entropy over the K codes
                    (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", Sec. 3.5)

Masked weights are applied as `weight * mask` in every forward pass, as minivq does, so
both frameworks do the same dense arithmetic. Used only by bench/bench_train.py.
"""
import torch
import torch.nn.functional as F
from torch import nn

NUM_CODES = 64      # K, the codebook size of the reference models
CODE_DIM = 16       # d, the size of one code vector
HIDDEN = 64         # channels of the VQ-VAE trunk and of the prior
RES_HIDDEN = 32     # bottleneck channels inside a VQ-VAE residual block
BETA = 0.25         # commitment weight, the paper's value (Sec. 3.2)
PRIOR_BLOCKS = 6    # residual masked-conv blocks of the prior


class ResBlock(nn.Module):
    """x + conv1x1(ReLU(conv3x3(ReLU(x)))): (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels=HIDDEN, hidden=RES_HIDDEN):
        super().__init__()
        self.conv3 = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv1 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        return x + self.conv1(F.relu(self.conv3(F.relu(x))))


class VQVAE(nn.Module):
    """The reference VQ-VAE on (B, 1, 28, 28) images in [0, 1]; codes on a 7x7 grid."""

    def __init__(self, num_codes=NUM_CODES, code_dim=CODE_DIM, beta=BETA):
        super().__init__()
        self.beta = beta
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1), nn.ReLU(),       # 28 -> 14
            nn.Conv2d(32, HIDDEN, 4, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
            nn.Conv2d(HIDDEN, HIDDEN, 3, padding=1),
            ResBlock(), ResBlock(), nn.ReLU(),
            nn.Conv2d(HIDDEN, code_dim, 1))
        # Codes start in a small box around the origin (+-1/K), as minivq's quantizer does.
        self.codebook = nn.Parameter(torch.empty(num_codes, code_dim).uniform_(-1 / num_codes, 1 / num_codes))
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, HIDDEN, 3, padding=1),
            ResBlock(), ResBlock(), nn.ReLU(),
            nn.ConvTranspose2d(HIDDEN, 32, 4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1))                  # 14 -> 28

    def nearest_codes(self, z_e):
        """argmin_k |z_e - e_k|^2 over the channel axis: (B, d, h, w) -> int64 (B, h, w)."""
        batch, d, height, width = z_e.shape
        z = z_e.permute(0, 2, 3, 1).reshape(-1, d)                     # (B*h*w, d)
        distances = ((z * z).sum(1, keepdim=True) - 2.0 * z @ self.codebook.t()
                     + (self.codebook * self.codebook).sum(1)[None, :])  # (B*h*w, K)
        return distances.argmin(1).reshape(batch, height, width)

    def quantize(self, z_e):
        """Straight-through quantization: returns z_q (B, d, h, w), indices, vq_loss."""
        indices = self.nearest_codes(z_e.detach())
        e = self.codebook[indices].permute(0, 3, 1, 2)                 # (B, h, w, d) -> (B, d, h, w)
        codebook_loss = F.mse_loss(e, z_e.detach())                    # |sg[z_e] - e|^2
        commitment_loss = F.mse_loss(z_e, e.detach())                  # |z_e - sg[e]|^2
        z_q = z_e + (e - z_e).detach()                                 # straight-through (Eq. 3)
        return z_q, indices, codebook_loss + self.beta * commitment_loss

    def loss(self, x):
        """Training loss of a batch x (B, 1, 28, 28): MSE reconstruction + VQ losses."""
        z_q, _, vq_loss = self.quantize(self.encoder(x))
        return F.mse_loss(self.decoder(z_q), x) + vq_loss

    def encode(self, x):
        """Code indices of images x (B, 1, 28, 28): int64 (B, 7, 7)."""
        return self.nearest_codes(self.encoder(x))

    def decode(self, indices):
        """Images from code indices (B, 7, 7): (B, 1, 28, 28)."""
        return self.decoder(self.codebook[indices].permute(0, 3, 1, 2))


def causal_mask(kernel_size, mask_type):
    """(k, k) raster-order mask: 1 above the centre row and left of the centre.

    Mask 'A' also hides the centre (first layer: a cell must not see itself), mask
    'B' keeps it (later layers: the centre already holds only the past).
    """
    centre = kernel_size // 2
    mask = torch.zeros(kernel_size, kernel_size)
    mask[:centre, :] = 1.0
    mask[centre, :centre + (mask_type == "B")] = 1.0
    return mask


class MaskedConv2d(nn.Conv2d):
    """nn.Conv2d whose weight is multiplied by a fixed causal mask in every forward."""

    def __init__(self, channels, kernel_size, mask_type):
        super().__init__(channels, channels, kernel_size, padding=kernel_size // 2)
        self.register_buffer("mask", causal_mask(kernel_size, mask_type))

    def forward(self, x):
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class PixelCNN(nn.Module):
    """The reference prior: int64 code grids (B, h, w) -> logits (B, K, h, w)."""

    def __init__(self, num_codes=NUM_CODES, channels=HIDDEN, blocks=PRIOR_BLOCKS):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, channels)
        self.input_conv = MaskedConv2d(channels, 7, "A")
        self.blocks = nn.ModuleList(MaskedConv2d(channels, 3, "B") for _ in range(blocks))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, num_codes, 1))

    def forward(self, indices):
        h = self.input_conv(self.embedding(indices).permute(0, 3, 1, 2))   # (B, h, w, C) -> (B, C, h, w)
        for block in self.blocks:
            h = h + block(F.relu(h))
        return self.head(h)

    def loss(self, indices):
        """Mean cross-entropy of the codes under the prior's own predictions."""
        return F.cross_entropy(self(indices), indices)


@torch.no_grad()
def sample_prior(prior, num_samples, grid=(7, 7), generator=None):
    """Draw code grids cell by cell in raster order: int64 (num_samples, h, w).

    One full forward pass per cell (h*w passes); cell (i, j) is drawn from the softmax
    of its logits, which by the masks depend only on the cells before it.
    """
    height, width = grid
    indices = torch.zeros(num_samples, height, width, dtype=torch.long)
    for i in range(height):
        for j in range(width):
            probs = F.softmax(prior(indices)[:, :, i, j], dim=1)            # (N, K)
            indices[:, i, j] = torch.multinomial(probs, 1, generator=generator)[:, 0]
    return indices


def make_train_step(model, lr=1e-3):
    """One Adam step on model.loss(batch); returns step(batch) -> loss (float)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def step(batch):
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


@torch.no_grad()
def encode_dataset(vqvae, images, batch_size=500):
    """Code indices of images (N, 1, 28, 28), in batches: int64 (N, 7, 7)."""
    return torch.cat([vqvae.encode(images[i:i + batch_size])
                      for i in range(0, len(images), batch_size)])


def count_parameters(model):
    """Number of trainable scalars (masks and other buffers excluded)."""
    return sum(p.numel() for p in model.parameters())
