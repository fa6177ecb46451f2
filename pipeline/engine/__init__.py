"""The engine: the training loop and its step, batched prediction, checkpoints, and which devices and processes
the work runs on. Above the model package (it drives models), below the recipe (whose stages call it).
"""
