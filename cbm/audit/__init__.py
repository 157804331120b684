"""Audits of a fitted concept bottleneck: metrics composed into a report with plots."""

from cbm.audit.report import AuditData, AuditReport, run_audit

__all__ = ["AuditData", "AuditReport", "run_audit"]
