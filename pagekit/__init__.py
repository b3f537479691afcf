"""What every stage and the inference pipeline share, below all of them (imports only ``data`` and ``engine``):

- ``image``: reading, letterboxing, downscaling and padding page images; page coordinate channels;
- ``augment``: the photometric augmentation of page images;
- ``nets``: ImageNet normalisation and the smp/timm U-Net builder;
- ``registry``: the model registry and ``load_model`` (a network from its checkpoint alone);
- ``extract``: post-processing, trace probabilities -> 12 leads in mV;
- ``metric``: the competition metric.
"""
