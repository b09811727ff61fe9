"""`bridge report`: the audit report of every deletion, restore and purge (docs/report.md)."""

from bridge.report.build import (
    Written,
    build_document,
    default_filename,
    open_output,
    write_report,
)
from bridge.report.formats import FORMATS, ReportFormat, register
from bridge.report.integrity import (
    SEAL_SUFFIX,
    Seal,
    Signer,
    SigningKeyError,
    Verdict,
    load_public_key,
    load_signer,
    verify_report,
)
from bridge.report.model import (
    OPERATOR_ACTIONS,
    Document,
    Period,
    PeriodError,
    ReportMeta,
    ReportRecord,
    RowFilter,
    parse_moment,
)

__all__ = [
    "FORMATS",
    "OPERATOR_ACTIONS",
    "SEAL_SUFFIX",
    "Document",
    "Period",
    "PeriodError",
    "ReportFormat",
    "ReportMeta",
    "ReportRecord",
    "RowFilter",
    "Seal",
    "Signer",
    "SigningKeyError",
    "Verdict",
    "Written",
    "build_document",
    "default_filename",
    "load_public_key",
    "load_signer",
    "open_output",
    "parse_moment",
    "register",
    "verify_report",
    "write_report",
]
