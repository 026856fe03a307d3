"""`python -m hf_spider.zoo install` = `hf-spider zoo install` (for setup scripts)."""

import sys

from hf_spider.cli import main

sys.exit(main(["zoo", *sys.argv[1:]]))
