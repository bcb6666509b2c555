"""Which layer plays which part in a model, found by its class (Dense, the convolution and
pooling bases, Activation), never by its name in configs."""
from ..nn.conv import ConvLayer
from ..nn.layers import Dense, Sigmoid


def first_conv(model):
    """Index of the first convolutional layer, or None."""
    return next((i for i, layer in enumerate(model.layers) if isinstance(layer, ConvLayer)),
                None)


def conv_weight(layer):
    """The spatial kernels of a convolutional layer: (KH, KW, C, F) for conv2d, (KH, KW, C)
    for the depthwise part of depthwise/separable convolutions."""
    return layer.params.get("W_depthwise", layer.params["W"])


def weighted_layers(model):
    return [layer for layer in model.layers if layer.params]


def first_dense_on_images(model):
    """The first layer with parameters when it is Dense and the inputs are images (H, W, C),
    else None: its weights can be drawn as images."""
    weighted = weighted_layers(model)
    if weighted and isinstance(weighted[0], Dense) and len(model.input_shape) == 3:
        return weighted[0]
    return None


def all_dense(model):
    """Whether every layer with parameters is Dense (and there is one)."""
    weighted = weighted_layers(model)
    return bool(weighted) and all(isinstance(layer, Dense) for layer in weighted)


def is_sigmoid_net(model):
    """Dense layers each followed by a sigmoid, nothing else (report 002's network)."""
    layers = model.layers
    return bool(layers) and len(layers) % 2 == 0 and all(
        isinstance(d, Dense) and isinstance(s, Sigmoid) for d, s in zip(layers[0::2],
                                                                        layers[1::2]))
