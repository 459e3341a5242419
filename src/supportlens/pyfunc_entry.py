"""The MLflow "model from code" entry point of a logged supportlens model.

Why a file and not a pickled object: MLflow stores a model logged from code as this source file
(plus supportlens' code, which travels with it) instead of a CloudPickle blob, so loading a model
runs only supportlens' own code, never unpickled bytes. MLflow executes this file when the model
is logged and again when it is loaded; the model folder itself is an artifact (see
``tracking.SupportlensModel.load_context``).
"""

from supportlens.tracking import serve_from_code

serve_from_code()
