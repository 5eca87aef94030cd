"""The maths every op and the engine share, below both: counter-based draws (``rng``),
3x3 matrices (``geometry``), the fused colour map (``colour``), torchvision's uint8 tone
kernels (``tone``), pixel kernels (``kernels``), Gamma/Dirichlet variates
(``dirichlet``) and the device copies the kernels use (``transfer``).

Pure functions of their arguments: nothing here imports an op, a plan or a recipe, so
an op module can use any of it and the engine can sit above the ops it runs.
"""
