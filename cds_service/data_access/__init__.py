"""Getting the FHIR data a hook call needs: prefetch first, and say exactly what is missing."""
