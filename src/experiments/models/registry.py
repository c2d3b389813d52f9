"""The backbone table: one row per network, read without importing TensorFlow or Keras.

Everything else reads this table: the Hydra options of group ``backbone``
(``models.options``), configuration checks, the model builder, fine-tuning's freeze
rule, the README's backbone table (``tests/test_registry.py`` checks it) and the tests.
Adding a backbone is adding a row.

A row of a ``keras.applications`` network gives its constructor as a dotted path; the
backbone's name is the constructor's name in lower case, with an underscore before a
size word (``ResNet50`` -> ``resnet50``, ``EfficientNetV2B0`` -> ``efficientnetv2b0``,
``ConvNeXtTiny`` -> ``convnext_tiny``, ``NASNetMobile`` -> ``nasnet_mobile``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from experiments.errors import ConfigError

# What each kind of in-model preprocessing does to raw 0-255 pixels, in words. The kinds
# are keras.applications' preprocess_input modes; "included" means the network carries
# its own preprocessing layers (preprocess_input returns its input unchanged).
PREPROCESSING = {
    "caffe": "caffe: RGB to BGR, minus the ImageNet channel means",
    "tf": "scale to [-1, 1]",
    "torch": "scale to [0, 1], minus the ImageNet mean, over its std",
    "included": "none: the network includes its own",
    "unit": "scale to [0, 1]",
}
SIZE_WORDS = ("Tiny", "Small", "Base", "Large", "XLarge", "Mobile")
NOTOP = "_weights_tf_dim_ordering_tf_kernels_notop.h5"


@dataclass(frozen=True)
class BackboneSpec:
    name: str  # the Hydra option: backbone=<name>
    constructor: str  # dotted path to f(include_top=False, weights=..., input_shape=...)
    preprocessing: str  # a key of PREPROCESSING: the layers put before the base
    min_size: int  # smallest input height/width the network accepts
    default_size: int  # the input size it was designed (and ImageNet-trained) for
    channels: int | None = 3  # input channels the network needs; None = any
    weights_file: str | None = None  # ImageNet weights file ({size} in it: see weight_sizes)
    weight_sizes: tuple[int, ...] = ()  # input sizes with weights of their own
    frozen: tuple[str, ...] = ("BatchNormalization",)  # layer classes fine-tuning keeps frozen
    module: str | None = None  # its keras.applications module, where not the constructor's
    head_units: int = 0  # a hidden dense layer in the head (0: none)
    head_batchnorm: bool = False  # batch normalisation on that hidden layer

    @property
    def imagenet(self) -> bool:
        """Whether ImageNet weights exist for it."""
        return self.weights_file is not None

    @property
    def family(self) -> str:
        """Its module, with its preprocess_input: ``keras.applications.resnet`` for resnet50."""
        return self.module or self.constructor.rsplit(".", 1)[0]

    def imagenet_file(self, size: int) -> str:
        """The weights file keras.applications loads for inputs of ``size`` pixels."""
        if self.weights_file is None:
            raise ValueError(f"{self.name} has no ImageNet weights")
        return self.weights_file.format(size=size if size in self.weight_sizes else 224)


def application_name(constructor: str) -> str:
    """The naming rule: ``convnext.ConvNeXtTiny`` -> ``convnext_tiny``."""
    function = constructor.rsplit(".", 1)[-1]
    return re.sub(f"({'|'.join(SIZE_WORDS)})$", r"_\1", function).lower()


def _app(
    constructor: str,
    preprocessing: str,
    min_size: int,
    default_size: int,
    weights_file: str,
    **more,
) -> BackboneSpec:
    """A row for ``keras.applications.<constructor>``, named by the naming rule."""
    return BackboneSpec(
        name=application_name(constructor),
        constructor=f"keras.applications.{constructor}",
        preprocessing=preprocessing,
        min_size=min_size,
        default_size=default_size,
        weights_file=weights_file,
        **more,
    )


_MOBILENET = "mobilenet_1_0_{size}_tf_no_top.h5"
_MOBILENET_V2 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
_MOBILENET_V3 = "weights_mobilenet_v3_{}_224_1.0_float_no_top_v2.h5"

_ROWS = (
    # The project's own networks, for small images of any number of channels.
    BackboneSpec(
        name="compact_cnn",  # the default, with its training recipe in conf/backbone/
        constructor="experiments.models.compact_cnn.base",
        preprocessing="unit",
        min_size=8,  # three 2x2 poolings
        default_size=28,
        channels=None,
        head_units=64,
        head_batchnorm=True,
    ),
    BackboneSpec(
        name="custom_cnn",  # the reference report's network, exactly
        constructor="experiments.models.custom_cnn.base",
        preprocessing="unit",
        min_size=18,  # three valid 3x3 convolutions and two poolings leave 1x1 at 18 pixels
        default_size=28,
        channels=None,
        head_units=64,
    ),
    # keras.applications: constructor, preprocessing, min size, default size, weights file.
    # ConvNeXt's LayerNormalization is not in `frozen`: it keeps no batch statistics
    # (phases/finetune.py says why that makes it safe to fine-tune).
    _app("convnext.ConvNeXtTiny", "included", 32, 224, "convnext_tiny_notop.h5"),
    _app("convnext.ConvNeXtSmall", "included", 32, 224, "convnext_small_notop.h5"),
    _app("convnext.ConvNeXtBase", "included", 32, 224, "convnext_base_notop.h5"),
    _app("convnext.ConvNeXtLarge", "included", 32, 224, "convnext_large_notop.h5"),
    _app("convnext.ConvNeXtXLarge", "included", 32, 224, "convnext_xlarge_notop.h5"),
    _app("densenet.DenseNet121", "torch", 32, 224, f"densenet121{NOTOP}"),
    _app("densenet.DenseNet169", "torch", 32, 224, f"densenet169{NOTOP}"),
    _app("densenet.DenseNet201", "torch", 32, 224, f"densenet201{NOTOP}"),
    _app("efficientnet.EfficientNetB0", "included", 32, 224, "efficientnetb0_notop.h5"),
    _app("efficientnet.EfficientNetB1", "included", 32, 240, "efficientnetb1_notop.h5"),
    _app("efficientnet.EfficientNetB2", "included", 32, 260, "efficientnetb2_notop.h5"),
    _app("efficientnet.EfficientNetB3", "included", 32, 300, "efficientnetb3_notop.h5"),
    _app("efficientnet.EfficientNetB4", "included", 32, 380, "efficientnetb4_notop.h5"),
    _app("efficientnet.EfficientNetB5", "included", 32, 456, "efficientnetb5_notop.h5"),
    _app("efficientnet.EfficientNetB6", "included", 32, 528, "efficientnetb6_notop.h5"),
    _app("efficientnet.EfficientNetB7", "included", 32, 600, "efficientnetb7_notop.h5"),
    _app("efficientnet_v2.EfficientNetV2B0", "included", 32, 224, "efficientnetv2-b0_notop.h5"),
    _app("efficientnet_v2.EfficientNetV2B1", "included", 32, 240, "efficientnetv2-b1_notop.h5"),
    _app("efficientnet_v2.EfficientNetV2B2", "included", 32, 260, "efficientnetv2-b2_notop.h5"),
    _app("efficientnet_v2.EfficientNetV2B3", "included", 32, 300, "efficientnetv2-b3_notop.h5"),
    _app("efficientnet_v2.EfficientNetV2S", "included", 32, 384, "efficientnetv2-s_notop.h5"),
    _app("efficientnet_v2.EfficientNetV2M", "included", 32, 480, "efficientnetv2-m_notop.h5"),
    _app("efficientnet_v2.EfficientNetV2L", "included", 32, 480, "efficientnetv2-l_notop.h5"),
    _app("inception_v3.InceptionV3", "tf", 75, 299, f"inception_v3{NOTOP}"),
    _app("inception_resnet_v2.InceptionResNetV2", "tf", 75, 299, f"inception_resnet_v2{NOTOP}"),
    _app("mobilenet.MobileNet", "tf", 32, 224, _MOBILENET, weight_sizes=(128, 160, 192, 224)),
    _app(
        "mobilenet_v2.MobileNetV2",
        "tf",
        32,
        224,
        _MOBILENET_V2,
        weight_sizes=(96, 128, 160, 192, 224),
    ),
    # Keras exports MobileNetV3's constructors only at the top of keras.applications.
    _app(
        "MobileNetV3Small",
        "included",
        32,
        224,
        _MOBILENET_V3.format("small"),
        module="keras.applications.mobilenet_v3",
    ),
    _app(
        "MobileNetV3Large",
        "included",
        32,
        224,
        _MOBILENET_V3.format("large"),
        module="keras.applications.mobilenet_v3",
    ),
    _app("nasnet.NASNetMobile", "tf", 32, 224, "nasnet_mobile_no_top.h5"),
    _app("nasnet.NASNetLarge", "tf", 32, 331, "nasnet_large_no_top.h5"),
    _app("resnet.ResNet50", "caffe", 32, 224, f"resnet50{NOTOP}"),
    _app("resnet.ResNet101", "caffe", 32, 224, f"resnet101{NOTOP}"),
    _app("resnet.ResNet152", "caffe", 32, 224, f"resnet152{NOTOP}"),
    _app("resnet_v2.ResNet50V2", "tf", 32, 224, f"resnet50v2{NOTOP}"),
    _app("resnet_v2.ResNet101V2", "tf", 32, 224, f"resnet101v2{NOTOP}"),
    _app("resnet_v2.ResNet152V2", "tf", 32, 224, f"resnet152v2{NOTOP}"),
    _app("vgg16.VGG16", "caffe", 32, 224, f"vgg16{NOTOP}"),
    _app("vgg19.VGG19", "caffe", 32, 224, f"vgg19{NOTOP}"),
    _app("xception.Xception", "tf", 71, 299, f"xception{NOTOP}"),
)
BACKBONES: dict[str, BackboneSpec] = {row.name: row for row in _ROWS}


def names() -> list[str]:
    """Every backbone name, in table order."""
    return list(BACKBONES)


def first_of_each_family() -> list[str]:
    """One backbone per module of code: what the fast tests and benchmarks cover."""
    firsts: dict[str, str] = {}
    for row in BACKBONES.values():
        firsts.setdefault(row.family, row.name)
    return list(firsts.values())


def spec(name: str) -> BackboneSpec:
    """The row of backbone ``name``; raises ConfigError for an unknown name."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(
            "backbone.name", f"unknown backbone {name!r}; choose one of {names()}"
        ) from None


def markdown_table() -> str:
    """The README's backbone table (a test keeps the README equal to it)."""
    header = (
        "backbone",
        "preprocessing in the model",
        "min size",
        "default size",
        "ImageNet weights file",
    )
    lines = [f"| {' | '.join(header)} |", "| --- | --- | --- | --- | --- |"]
    for row in BACKBONES.values():
        weights = f"`{row.imagenet_file(row.default_size)}`" if row.imagenet else "none"
        lines.append(
            f"| `{row.name}` | {PREPROCESSING[row.preprocessing]} | {row.min_size} "
            f"| {row.default_size} | {weights} |"
        )
    return "\n".join(lines) + "\n"
