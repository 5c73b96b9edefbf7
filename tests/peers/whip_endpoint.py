"""A WHIP endpoint (RFC 9725) Booth did not write: aiohttp + aiortc, for the WHIP-out tests.

    whip_endpoint.py HOST PORT OUT_DIR [TOKEN]     (PORT 0: any free port)

Accepts `POST /whip` with an `application/sdp` offer (with TOKEN, only with
`Authorization: Bearer TOKEN`; 401 otherwise), answers 201 with the SDP answer and a
`Location: /whip/session/N`, and records the session's audio to OUT_DIR/session-N.wav (16-bit,
the decoder's rate and channels; the header is right after every write, so the file can be read
while it grows). `DELETE /whip/session/N` ends the session. Prints one line per event:

    listening http://HOST:PORT/whip
    session N offered / session N track / session N deleted / refused STATUS
"""

import asyncio
import sys
import wave

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


def say(*words):
    print(*words, flush=True)


class Endpoint:
    def __init__(self, out_dir, token):
        self.out_dir = out_dir
        self.token = token
        self.sessions = {}
        self.next_id = 1

    async def offer(self, request):
        if self.token is not None:
            if request.headers.get("Authorization", "") != "Bearer " + self.token:
                say("refused 401")
                return web.Response(status=401, text="a valid bearer token is needed")
        if not request.headers.get("Content-Type", "").startswith("application/sdp"):
            say("refused 415")
            return web.Response(status=415, text="send application/sdp")
        sdp = await request.text()
        n = self.next_id
        self.next_id += 1
        pc = RTCPeerConnection()
        self.sessions[n] = (pc, [])

        @pc.on("track")
        def on_track(track):
            if track.kind == "audio":
                say(f"session {n} track")
                task = asyncio.ensure_future(record(track, f"{self.out_dir}/session-{n}.wav"))
                self.sessions[n][1].append(task)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        say(f"session {n} offered")
        return web.Response(
            status=201,
            text=pc.localDescription.sdp,
            content_type="application/sdp",
            headers={"Location": f"/whip/session/{n}"},
        )

    async def delete(self, request):
        n = int(request.match_info["n"])
        session = self.sessions.pop(n, None)
        if session is None:
            return web.Response(status=404)
        await close(session)
        say(f"session {n} deleted")
        return web.Response(status=200)

    async def close_all(self):
        for session in list(self.sessions.values()):
            await close(session)


async def close(session):
    pc, tasks = session
    for task in tasks:
        task.cancel()
    await pc.close()


async def record(track, path):
    out = None
    try:
        while True:
            frame = await track.recv()
            if out is None:
                out = wave.open(path, "wb")
                out.setnchannels(len(frame.layout.channels))
                out.setsampwidth(2)
                out.setframerate(frame.sample_rate)
            # Packed s16 from aiortc's Opus decoder; wave patches the header on every write.
            out.writeframes(frame.to_ndarray().astype("<i2").tobytes())
    except (MediaStreamError, asyncio.CancelledError):
        pass
    finally:
        if out is not None:
            out.close()


async def serve(host, port, endpoint):
    app = web.Application()
    app.router.add_post("/whip", endpoint.offer)
    app.router.add_delete("/whip/session/{n}", endpoint.delete)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    port = runner.addresses[0][1]
    say(f"listening http://{host}:{port}/whip")
    try:
        await asyncio.Event().wait()
    finally:
        await endpoint.close_all()
        await runner.cleanup()


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    host, port, out_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    token = sys.argv[4] if len(sys.argv) > 4 else None
    try:
        asyncio.run(serve(host, port, Endpoint(out_dir, token)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
