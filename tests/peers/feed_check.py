#!/usr/bin/env python3
"""What two independent podcast feed parsers see in a feed file: feedparser (the common RSS
library) and podcastparser (gPodder's). Prints one JSON object; the Rust test judges it.

    feed_check.py FEED.xml
"""

import json
import sys
import xml.etree.ElementTree as ET

import feedparser
import podcastparser


def main():
    path = sys.argv[1]
    with open(path, "rb") as f:
        raw = f.read()
    # Well-formed, or this raises and the script fails.
    ET.fromstring(raw)

    fp = feedparser.parse(raw)
    seen_fp = {
        "bozo": bool(fp.bozo),
        "bozo_exception": str(fp.get("bozo_exception", "")),
        "title": fp.feed.get("title"),
        "episodes": [
            {
                "title": e.get("title"),
                "guid": e.get("id"),
                "duration": e.get("itunes_duration"),
                "enclosures": [
                    {"url": x.get("href"), "length": int(x.get("length", -1)), "type": x.get("type")}
                    for x in e.get("enclosures", [])
                ],
            }
            for e in fp.entries
        ],
    }

    with open(path, "rb") as f:
        pp = podcastparser.parse("file://" + path, f)
    seen_pp = {
        "title": pp.get("title"),
        "episodes": [
            {
                "title": e.get("title"),
                "guid": e.get("guid"),
                "duration": e.get("total_time"),
                "enclosures": [
                    {"url": x.get("url"), "length": x.get("file_size"), "type": x.get("mime_type")}
                    for x in e.get("enclosures", [])
                ],
            }
            for e in pp.get("episodes", [])
        ],
    }
    json.dump({"feedparser": seen_fp, "podcastparser": seen_pp}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
