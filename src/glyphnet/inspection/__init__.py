"""Looking inside models and runs: metrics, figures, training dynamics (monitor), explanations
(saliency, deconvolution, activation maximisation) and the HTML report. Matplotlib is imported
only by the figure modules."""
