"""A client of Booth through an HTTPS reverse proxy (docs/scaling/nginx-tls.conf), from its own
loopback address: creates a room, joins its channel over wss://, reads a few KB of the live MP3
stream, and tries the API with a foreign Origin and a forged X-Forwarded-For. Prints what it saw
as one JSON object; asserts nothing (the Rust test does).

usage: tls_client.py BASE_URL CA_CERT SOURCE_IP
"""

import asyncio
import json
import ssl
import sys

import aiohttp


async def main(base, ca, source):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the certificate names localhost; the test dials 127.0.0.1
    conn = aiohttp.TCPConnector(ssl=ctx, local_addr=(source, 0))
    seen = {}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as http:
        async with http.post(f"{base}/api/rooms", json={"title": "Over TLS", "game": "Tests"}) as r:
            seen["create_status"] = r.status
            room = await r.json()
        seen["host_link"] = room["host_link"]
        ws_url = base.replace("https", "wss", 1) + f"/api/rooms/{room['id']}/ws"
        async with http.ws_connect(ws_url) as ws:
            await ws.send_json({"v": 1, "type": "hello", "name": "TLS", "token": room["host_token"]})
            async for msg in ws:
                body = json.loads(msg.data)
                if body.get("type") == "welcome":
                    seen["welcome_role"] = body["you"]["role"]
                    break
        async with http.get(f"{base}/live/{room['id']}.mp3") as r:
            seen["live_status"] = r.status
            seen["live_type"] = r.headers.get("content-type", "")
            got = b""
            while len(got) < 8192:
                chunk = await r.content.read(8192 - len(got))
                if not chunk:
                    break
                got += chunk
            seen["live_bytes"] = len(got)
        headers = {"origin": "https://evil.example", "x-forwarded-for": "203.0.113.9"}
        async with http.post(f"{base}/api/rooms", json={"title": "x", "game": "y"}, headers=headers) as r:
            seen["foreign_status"] = r.status
            seen["foreign_error"] = (await r.json()).get("error")
    print(json.dumps(seen), flush=True)


asyncio.run(main(*sys.argv[1:4]))
