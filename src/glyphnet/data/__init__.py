"""Data: file readers, the registry of named data sets, image folders and image preparation,
subsets and splits, augmentation, downloads, and the [data] config section."""
from .config import check_config, load_from_config, preparation_for
from .datasets import (DATA_ENV, DATASETS, Dataset, bundled_mnist_dir, data_dir,
                       data_dir_source, known_datasets, load_emnist, load_faces, load_files,
                       load_folder, load_mnist, load_named, load_usps)
from .readers import load_csv, load_idx_pair, read_idx
from .splits import first_per_class, split_per_class, validation_split
