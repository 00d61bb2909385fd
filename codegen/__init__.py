"""The exi15118 schema compiler: XSDs -> EXI grammar tables and typed message classes.

Passes: xsd (load with xmlschema into an IR) -> grammar (EXI 1.0 section 8.5 grammars)
-> emit (numbered tables and classes).  Run `python -m codegen` to regenerate everything.
"""
