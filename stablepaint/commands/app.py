"""`stablepaint app`: the gradio web app on localhost (`stablepaint.app`)."""

from __future__ import annotations

import argparse
import signal
import sys

from stablepaint.commands import BaseStablepaintCommand


class AppCommand(BaseStablepaintCommand):
    """`stablepaint app [--host H] [--port P] [--model M ...]`."""

    @staticmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
        parser = commands.add_parser(
            "app",
            help="start the web app (gradio) to color linearts in the browser",
            description="Start the stablepaint web app: upload or draw a lineart, paint hints and a mask, run a model. "
            'Needs `pip install "stablepaint[app]"`. Binds to 127.0.0.1 unless --host says otherwise.',
        )
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"
        )
        parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
        parser.add_argument(
            "--model",
            action="append",
            default=None,
            metavar="NAME_OR_PATH",
            help="a shipped model name, pipeline folder, Hub id or 'flat-fill' (repeatable; default: every shipped model "
            "and flat-fill)",
        )
        parser.add_argument(
            "--share", action="store_true", help="also open a public gradio.live link (off by default)"
        )
        parser.add_argument(
            "--max-image-size", type=int, default=1024, help="largest image side in pixels (default 1024)"
        )
        parser.add_argument("--max-upload-mb", type=float, default=10, help="largest upload in MB (default: 10)")
        parser.add_argument(
            "--device", default=None, help="device of the pipelines: cpu, cuda, mps or auto (default: cpu)"
        )
        parser.set_defaults(func=AppCommand)

    def run(self) -> int:
        args = self.args
        from stablepaint.app.ui import build_app, launch_app

        if not 0 <= args.port < 65536:
            raise ValueError(f"--port must lie in [0, 65535], got {args.port}.")
        models = None
        if args.model:
            models = {str(name): str(name) for name in args.model}
        demo = build_app(
            models, max_image_size=args.max_image_size, max_upload_mb=args.max_upload_mb, device=args.device
        )
        print(f"stablepaint app: models {demo.colorization_app.model_names}; temporary files in {demo.temp_dir}")
        # A plain `kill` (SIGTERM) then exits like Ctrl+C, so that the temp folder is removed at exit.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        launch_app(demo, host=args.host, port=args.port, share=args.share)
        return 0
