"""An independent WebRTC peer (aiortc) for Booth's interop tests.

    aiortc_peer.py whep URL OUT.wav SECONDS [TOKEN]   listen and record what is heard
    aiortc_peer.py whip URL TOKEN FREQ SECONDS         publish a sine of FREQ Hz
"""

import asyncio
import fractions
import math
import sys
import time

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRecorder


class Sine(MediaStreamTrack):
    kind = "audio"

    def __init__(self, freq):
        super().__init__()
        self.freq = freq
        self.n = 0
        self.start = None

    async def recv(self):
        rate, samples = 48000, 960
        if self.start is None:
            self.start = time.time()
        wait = self.start + self.n / rate - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(samples) + self.n) / rate
        pcm = (0.4 * 32767 * np.sin(2 * math.pi * self.freq * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = self.n
        frame.time_base = fractions.Fraction(1, rate)
        self.n += samples
        return frame


async def negotiate(pc, url, token):
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = "Bearer " + token
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=pc.localDescription.sdp, headers=headers) as r:
            body = await r.text()
            if r.status != 201:
                raise SystemExit(f"{url} answered {r.status}: {body}")
            location = r.headers.get("Location")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return location


async def whep(url, out, seconds, token):
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    recorder = MediaRecorder(out)

    @pc.on("track")
    def on_track(track):
        recorder.addTrack(track)

    await negotiate(pc, url, token)
    await recorder.start()
    await asyncio.sleep(seconds)
    await recorder.stop()
    await pc.close()
    print("aiortc: recorded", out, flush=True)


async def whip(url, token, freq, seconds):
    pc = RTCPeerConnection()
    pc.addTransceiver(Sine(freq), direction="sendonly")
    await negotiate(pc, url, token)
    for _ in range(int(seconds * 10)):
        await asyncio.sleep(0.1)
    print("aiortc: published", pc.connectionState, flush=True)
    await pc.close()


def main():
    mode = sys.argv[1]
    if mode == "whep":
        token = sys.argv[5] if len(sys.argv) > 5 else None
        asyncio.run(whep(sys.argv[2], sys.argv[3], float(sys.argv[4]), token))
    elif mode == "whip":
        asyncio.run(whip(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
