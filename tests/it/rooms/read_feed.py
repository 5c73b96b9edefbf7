"""Reads a podcast feed the way podcast apps do, and prints what each parser saw as JSON.

feedparser and podcastparser (gPodder's) are two independent parsers from PyPI; xml.etree checks
that the feed is well-formed XML and reads the Podcasting 2.0 live items, which neither parser
knows. Usage: read_feed.py FEED.xml
"""

import json
import sys
import xml.etree.ElementTree as ET

import feedparser
import podcastparser

PODCAST = "{https://podcastindex.org/namespace/1.0}"


def seconds(text):
    parts = [int(float(p)) for p in str(text).split(":")]
    total = 0
    for p in parts:
        total = total * 60 + p
    return total


def with_feedparser(path):
    feed = feedparser.parse(path)
    if feed.bozo:
        raise SystemExit(f"feedparser: {feed.bozo_exception}")
    items = []
    for e in feed.entries:
        enc = e.enclosures[0] if e.enclosures else {}
        items.append({
            "guid": e.get("id"),
            "title": e.get("title"),
            "url": enc.get("href"),
            "length": int(enc.get("length", 0)),
            "duration": seconds(e.get("itunes_duration", 0)),
        })
    return items


def with_podcastparser(path):
    with open(path, "rb") as f:
        parsed = podcastparser.parse("http://feed.example/podcast.xml", f)
    items = []
    for e in parsed.get("episodes", []):
        enc = e["enclosures"][0] if e["enclosures"] else {}
        items.append({
            "guid": e.get("guid"),
            "title": e.get("title"),
            "url": enc.get("url"),
            "length": enc.get("file_size"),
            "duration": e.get("total_time"),
        })
    return items


def live_items(path):
    root = ET.parse(path).getroot()
    out = []
    for item in root.iter(PODCAST + "liveItem"):
        link = item.find(PODCAST + "contentLink")
        out.append({
            "status": item.get("status"),
            "title": item.findtext("title"),
            "link": link.get("href") if link is not None else None,
        })
    return out


def main():
    path = sys.argv[1]
    print(json.dumps({
        "feedparser": with_feedparser(path),
        "podcastparser": with_podcastparser(path),
        "live": live_items(path),
    }))


main()
