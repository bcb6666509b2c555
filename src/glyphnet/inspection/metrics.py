"""Metrics of predictions: the confusion matrix and the accuracy of each class."""
import numpy as np


def confusion_matrix(labels, predicted, num_classes):
    """cm[i, j] = how many samples of true class i were predicted as class j."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(predicted)), 1)
    return cm


def per_class_accuracy(cm):
    """Accuracy of each true class (0 for a class without samples)."""
    return np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
