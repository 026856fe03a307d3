import sys

from hf_spider.cli import main

sys.exit(main())
