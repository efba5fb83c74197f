"""Screening: baselines, rule checks, drift, outliers, duplicates, PII, licences, intel, model scans."""
