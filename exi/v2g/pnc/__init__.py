"""ISO 15118-2 Plug & Charge as the sessions use it, without the session state machines.

* :mod:`.secc`: :class:`ContractAuthorization` (one per session: PaymentDetails,
  Authorization, signed SalesTariffs, MeteringReceipt, certificate requests relayed to the
  backend) and :class:`SECCPnCConfig`;
* :mod:`.evcc`: :class:`ContractWallet` (contract, OEM provisioning credentials, the
  signed requests, response and tariff checks, storage in the PKI folder);
* :mod:`.calls`: :class:`BackendCall`, the async seam between a sans-I/O core and the
  :class:`exi.v2g.backend.Backend`.

Built on :mod:`exi.v2g.security` (signatures, chains, key transport, OCSP) and
:mod:`exi.v2g.backend`.  See README.md in this folder.
"""
from .calls import BackendCall
from .evcc import ContractWallet
from .secc import ContractAuthorization, SECCPnCConfig

__all__ = ["BackendCall", "ContractAuthorization", "SECCPnCConfig", "ContractWallet"]
