"""cytopenia-cds: a CDS Hooks 2.0 service for cytopenias and febrile neutropenia."""


def create_app(*args, **kwargs):
    """App factory (imported lazily so the clinical core can be used without Flask)."""
    from cds_service.app import create_app as factory

    return factory(*args, **kwargs)


__all__ = ["create_app"]
