#!/usr/bin/env python3
"""What two independent podcast feed parsers see in a feed file: feedparser (the common RSS
library) and podcastparser (gPodder's), and, read with xml.etree (neither parser knows them),
the Podcasting 2.0 live items. Prints one JSON object; the Rust test judges it.

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
    json.dump({"feedparser": seen_fp, "podcastparser": seen_pp, "live": live_items(raw)},
              sys.stdout, ensure_ascii=False)


PODCAST = "{https://podcastindex.org/namespace/1.0}"


def live_items(raw):
    out = []
    for item in ET.fromstring(raw).iter(PODCAST + "liveItem"):
        link = item.find(PODCAST + "contentLink")
        enclosure = item.find("enclosure")
        out.append({
            "status": item.get("status"),
            "title": item.findtext("title"),
            "link": link.get("href") if link is not None else None,
            "enclosure": enclosure.get("url") if enclosure is not None else None,
            "type": enclosure.get("type") if enclosure is not None else None,
        })
    return out


if __name__ == "__main__":
    main()
