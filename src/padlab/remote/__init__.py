"""The program padlab runs ON THE BOX.

Standard library only, Python >= 3.8: it must run on any stock image before
anything is installed. The client ships this package as a zip over stdin
(``padlab.transport``) and the same code serves the local machine and every
remote provider. Modules that need the box's virtual environment (``keygen``)
are run with that environment's interpreter, never imported here.
"""
