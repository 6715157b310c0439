from setuptools import find_packages, setup

setup(
    name="minivq",
    version="0.1.0",
    description="VQ-VAE and PixelCNN prior from scratch in NumPy + autograd",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["minivq", "minivq.*"]),
    package_data={"minivq": ["assets/*.npz", "assets/*.md"]},
    python_requires=">=3.9",
    install_requires=["numpy", "autograd", "matplotlib", "tqdm"],
    extras_require={
        "test": ["pytest"],
        # torch 2.13.0 is the CPU build on this machine's disk; an unpinned torch would
        # pull a multi-GB CUDA build.
        "bench": ["torch==2.13.0"],
    },
    entry_points={"console_scripts": ["minivq=minivq.cli:main"]},
)
