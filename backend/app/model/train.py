"""The old name of the training CLI, kept so ``python -m app.model.train`` in existing scripts still works.

The command is ``python -m app.registry.train`` (it uses the evaluation package, which the model
package must not import). Importing this module does nothing; running it runs that one.
"""

if __name__ == "__main__":
    import runpy

    runpy.run_module("app.registry.train", run_name="__main__", alter_sys=True)
