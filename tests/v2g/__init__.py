"""Tests of the transport layer (exi.v2g): V2GTP, SDP, TLS, PKI, asyncio drivers."""
