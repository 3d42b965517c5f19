"""Allows `python -m appliance` as a synonym for the `ingestbox` command."""

from appliance.cli import main

raise SystemExit(main())
