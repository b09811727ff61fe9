"""Vendor adapters: one per API, each turning a vendor view into normalised states."""
