"""Datasets from their official file formats, plus the offline MNIST sample.

>>> from semcom.data import load_dataset
>>> ds = load_dataset("mnist-sample", subset=100)   # offline, no data root needed
>>> ds.images().shape
torch.Size([100, 1, 28, 28])
"""

from semcom.data.dataset import ImageDataset
from semcom.data.download import data_root
from semcom.data.sources import DATASETS, DatasetSpec, load_dataset, mnist_sample_indices, without_mnist_sample

__all__ = ["DATASETS", "DatasetSpec", "ImageDataset", "data_root", "load_dataset", "mnist_sample_indices",
           "without_mnist_sample"]
