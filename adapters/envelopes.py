"""Moved to :mod:`strato.adapters.common.envelopes`; kept while the clouds move over."""

from .common.envelopes import REF, is_ref, kept_fields

__all__ = ["REF", "is_ref", "kept_fields"]
