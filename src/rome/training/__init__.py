"""Retraining and evaluation pieces composed from timm's utilities (the loop, augmentation, costs).

``rome.stages.train`` / ``rome.stages.evaluate`` wire these to params and artifacts; nothing here
reads params files or writes artifact folders.
"""
