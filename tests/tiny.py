"""The tiny MLP config that experiment, lab and browser tests train in a few seconds."""


def tiny_config(seed=0, train_limit=500, test_limit=200, batch_size=32, comment=""):
    """TOML text: a 784-16-10 MLP on the first MNIST images, one epoch."""
    return f"""{comment}seed = {seed}
[data]
dataset = "mnist"
train_limit = {train_limit}
test_limit = {test_limit}
[model]
layers = [{{type = "dense", units = 16}}, {{type = "relu"}}, {{type = "dense", units = 10}},
          {{type = "softmax"}}]
[training]
epochs = 1
batch_size = {batch_size}
"""
