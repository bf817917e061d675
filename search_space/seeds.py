"""Named seed networks: the "existing networks" the controller and the random walks start from."""

from __future__ import annotations

from narch.search_space.layer import SpecError, add, avgpool, conv, dense, dropout, maxpool
from narch.search_space.spec import Network

SEEDS: dict[str, Network] = {
    # LeNet-5's layout (6/16 channels, kernel 5, pooling, 120/84 dense).
    "lenet": Network((conv(6, 5), maxpool(2), conv(16, 5), maxpool(2), dense(120), dense(84))),
    # The CNN baseline of the MNIST-1D paper: three strided convs of 25 channels.
    "mnist1d_cnn": Network((conv(25, 5, 2), conv(25, 3, 2), conv(25, 3, 2))),
    # A small VGG-style stack.
    "vgg_tiny": Network(
        (conv(16, 3), conv(16, 3), maxpool(2), conv(32, 3), conv(32, 3), maxpool(2), dense(64), dropout(20))
    ),
    # A small residual network: stem, two residual blocks, a strided transition.
    "resnet_tiny": Network(
        (
            conv(32, 3),
            conv(32, 3),
            conv(32, 3),
            add(0, 2),
            conv(64, 3, 2),
            conv(64, 3),
            conv(64, 3),
            add(4, 6),
        )
    ),
    # All-convolutional: downsampling by strides only, no dense layer.
    "allconv": Network((conv(16, 3), conv(32, 3, 2), conv(32, 3), conv(64, 3, 2), avgpool(2))),
    # The smallest sensible network: one conv.
    "tiny": Network((conv(8, 3),)),
}


def seed_network(name: str) -> Network:
    """A seed network by name; unknown names raise SpecError listing the known ones."""
    try:
        return SEEDS[name]
    except KeyError:
        raise SpecError(f"seed network {name!r} is unknown (known: {', '.join(sorted(SEEDS))})") from None
