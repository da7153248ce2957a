"""`python -m internvid.train` and `torchrun -m internvid.train`: train from the arguments."""

import logging

from internvid.train.loop import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
