"""The frozen program's entry point: multiprocessing's children (the transcoder) start through it too."""

import multiprocessing

from appliance.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a spawned transcode child runs its target here, not main()
    raise SystemExit(main())
