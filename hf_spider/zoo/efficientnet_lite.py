"""The name the zoo's EfficientNet-Lite model cards use; the code is `hf_spider.models.efficientnet_lite`.

Kept so the snippet in the cards of the installed zoo repos (`from hf_spider.zoo.efficientnet_lite
import from_pretrained`) keeps working and the repos keep their content-derived commits.
Product code imports `hf_spider.models.efficientnet_lite`.
"""

from hf_spider.models.efficientnet_lite import (  # noqa: F401
    EfficientNetLite,
    PretrainedCfg,
    canonical_name,
    from_pretrained,
    load_from_folder,
)
