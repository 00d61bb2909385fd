"""Charging sessions: sans-I/O SECC and EVCC state machines for DIN SPEC 70121 (DC) and
ISO 15118-2 (AC and DC, external identification), their controllers, timers, asyncio
drivers and an in-memory testing pair.  See README.md in this folder for the scope and
the deviations from the standards."""
from .controllers import (ACLimits, DCLimits, EVController, EVSEController, MeterReading,
                          SchedulePeriod, SimulatedEV, SimulatedEVSE)
from .events import (Close, Event, MessageReceived, PowerDeliveryChanged, ProtocolNegotiated,
                     Send, SessionEnded, SessionEstablished, TimerViolation)
from .evcc import EVCCConfig, EVCCSession
from .machine import EVCCState, SECCState, diagram
from .secc import SECCConfig, SECCSession, SessionStore

__all__ = [
    "ACLimits", "DCLimits", "EVController", "EVSEController", "MeterReading", "SchedulePeriod",
    "SimulatedEV", "SimulatedEVSE", "Close", "Event", "MessageReceived", "PowerDeliveryChanged",
    "ProtocolNegotiated", "Send", "SessionEnded", "SessionEstablished", "TimerViolation", "EVCCConfig",
    "EVCCSession", "EVCCState", "SECCState", "diagram", "SECCConfig", "SECCSession",
    "SessionStore",
]
