"""glyphnet models outside glyphnet: ONNX export (onnx.py), a scikit-learn estimator
(sklearn.py) and TensorBoard event files written during training (tensorboard.py). Each needs
its optional extra (``pip install 'glyphnet[onnx]'``, ``'glyphnet[sklearn]'``,
``'glyphnet[tensorboard]'``) and imports it only when used."""
