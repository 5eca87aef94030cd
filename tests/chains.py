"""Recipes the engine tests share: the benchmark chain and one that uses every op."""

BENCH_CHAIN = {
    "ops": [
        {"op": "rotate", "degrees": 30},
        {"op": "random_resized_crop", "size": [64, 80], "scale": [0.5, 1.0]},
        {"op": "hflip"},
        {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    ]
}
EVERY_OP = {
    "ops": [
        {"op": "pad", "padding": [4, 2, 6, 8]},
        {"op": "affine", "degrees": 10, "translate": [0.1, 0.1], "scale": [0.8, 1.2], "shear": 5},
        {"op": "perspective", "distortion_scale": 0.3, "p": 0.7},
        {"op": "crop", "size": [100, 130], "position": "random"},
        {"op": "vflip"},
        {"op": "color_jitter", "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05},
        {"op": "grayscale", "p": 0.3},
        {"op": "resize", "size": [48, 64]},
        {"op": "gaussian_blur", "kernel_size": 5, "sigma": [0.1, 2.0]},
        {"op": "random_erasing", "p": 0.5, "value": [255, 0, 0]},
    ]
}
