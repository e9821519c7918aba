"""Asks a running TF Serving for the PCM's Pr(k|x) of images: image files, folders, .npy batches.

    python -m gmmgan_tf.serving_client --server=localhost:8500 --images=a.png,b.png   # gRPC
    python -m gmmgan_tf.serving_client --rest=http://localhost:8501 --images=batch.npy  # REST
    python -m gmmgan_tf.serving_client --server=localhost:8500 --images=photos/ --image_shape=28,28,1

The images are read by image_input.py, as --mode=assign reads them (the same decoding, the same
skipped files and refused .npy batches). With --image_shape (the training shape H,W,C) each
image is converted to it exactly as assign does (center crop, antialiased resize, channels) and
sent as floats in [-1, 1] to `serving_default`; without it they are sent as read, greyscale
(1 channel) when every image is (a greyscale file saved as RGB or RGBA too), uint8 pixels to
`serving_uint8` and a .npy's floats to `serving_default`. The batch is checked here before
sending (rank 4 NHWC, one shape, 1 or 3 channels, --image_shape when given; dtype and values by
image_range.py, the rule the export's graph applies too, which refuses [0, 1] floats); the
server checks it against the training size again and its message is printed as one line.
Exports that serve a novelty score get a `novelty` column, and NOVEL beside images above the
calibrated threshold.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gmmgan_tf import image_input, image_range
from gmmgan_tf.errors import UserError

FLOAT_SIGNATURE, UINT8_SIGNATURE = "serving_default", "serving_uint8"


class ClientError(Exception):
    """A bad request or a refused one: printed as one line."""


class Refused(ClientError):
    """The server refused the request (e.g. images of another size than the training one)."""


def load_images(paths: list[str], image_shape: tuple[int, int, int] | None = None
                ) -> image_input.Loaded:
    """The images of `paths` (image files, folders, .npy batches) as one batch in `images`:
    with `image_shape`, converted to it as --mode=assign does; without, as read (module doc)."""
    loaded = image_input.read(paths, image_shape)
    images = loaded.images
    if image_shape is None:
        channels = 1 if all(image_input.is_grey(image) for image in images) else 3
        images = [image_input.fit_channels(image, channels) for image in images]
        if len({image.dtype for image in images}) > 1:  # files' pixels and a .npy's floats
            images = [image / np.float32(127.5) - 1 if image.dtype == np.uint8 else image
                      for image in images]
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise ClientError(f"--images: the images have different shapes {sorted(shapes)}; "
                              "pass --image_shape=H,W,C (the training shape) to convert them as "
                              "--mode=assign does")
    loaded.images = np.stack(images)
    return loaded


def parse_image_shape(text: str) -> tuple[int, int, int] | None:
    """--image_shape "28,28,1" -> (28, 28, 1); "" -> None."""
    if not text:
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ClientError(f"--image_shape: want H,W,C, three positive integers such as 28,28,1 "
                          f"(the training shape); got {text!r}")
    return tuple(int(p) for p in parts)


def validate_images(images: np.ndarray, image_shape: tuple[int, int, int] | None = None
                    ) -> np.ndarray:
    """The batch as uint8 or float32 [N, H, W, C], or a ClientError naming the problem."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ClientError(f"images must have rank 4 [N, H, W, C] (NHWC); got shape "
                          f"{images.shape}")
    if image_shape is not None and images.shape[1:] != tuple(image_shape):
        h, w, c = image_shape
        what = "channel(s)" if images.shape[1:3] == (h, w) else "pixels"
        raise ClientError(f"images must be [N, {h}, {w}, {c}] (the training size); got "
                          f"{images.shape}: wrong {what}")
    if images.shape[-1] not in (1, 3):
        raise ClientError(f"images must have 1 or 3 channels (NHWC); got {images.shape[-1]}")
    problem = image_range.refusal(images)
    if problem:
        raise ClientError(problem)
    return images if images.dtype == np.uint8 else images.astype(np.float32)


def signature_for(images: np.ndarray) -> str:
    return UINT8_SIGNATURE if images.dtype == np.uint8 else FLOAT_SIGNATURE


def build_predict_request(images: np.ndarray, model_name: str = "gmmgan_pcm",
                          signature: str | None = None):
    """A tensorflow_serving PredictRequest with the batch as the `images` input."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature or signature_for(images)
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    return request


def parse_predict_response(response) -> dict[str, np.ndarray]:
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def predict_grpc(server: str, images: np.ndarray, model_name: str = "gmmgan_pcm",
                 timeout: float = 30.0) -> dict[str, np.ndarray]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(build_predict_request(images, model_name), timeout=timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                raise ClientError(f"cannot reach {server} ({_first_line(e.details())}); is "
                                  f"tensorflow_model_server running at {server}?") from None
            raise Refused(f"{server}: {e.code().name}: {_first_line(e.details())}") from None
    return parse_predict_response(response)


def rest_body(images: np.ndarray) -> dict:
    """The REST predict body in the columnar ("inputs") form."""
    return {"signature_name": signature_for(images), "inputs": {"images": images.tolist()}}


def predict_rest(url: str, images: np.ndarray, model_name: str = "gmmgan_pcm",
                 timeout: float = 30.0) -> dict[str, np.ndarray]:
    import requests

    endpoint = f"{url.rstrip('/')}/v1/models/{model_name}:predict"
    try:
        reply = requests.post(endpoint, data=json.dumps(rest_body(images)), timeout=timeout)
    except requests.ConnectionError:
        raise ClientError(f"cannot reach {endpoint}; is tensorflow_model_server running at "
                          f"{url}?") from None
    except requests.RequestException as e:
        raise ClientError(f"{endpoint}: {_first_line(str(e))}") from None
    body = reply.json() if reply.content else {}
    if reply.status_code != 200 or "outputs" not in body:
        raise Refused(f"{endpoint}: HTTP {reply.status_code}: "
                          f"{_first_line(str(body.get('error', reply.text)))}")
    return {name: np.asarray(value) for name, value in body["outputs"].items()}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no message)"


def format_table(names: list[str], outputs: dict[str, np.ndarray]) -> str:
    """One row per image: component and Pr(k|x); with an export that serves novelty, also the
    score and NOVEL when it is above the threshold (which flags 5 % of the run's validation
    images, which it never trained on)."""
    probs = outputs["responsibilities"]
    served = "novelty" in outputs
    header = ("image\tcomponent\t" + ("novelty\tnovel\t" if served else "")
              + "\t".join(f"p{k}" for k in range(probs.shape[1])))
    rows = []
    for i, (name, c, row) in enumerate(zip(names, outputs["component"], probs)):
        cells = [name, str(int(c))]
        if served:
            cells += [f"{float(outputs['novelty'][i]):.3f}",
                      "NOVEL" if outputs["is_novel"][i] else "-"]
        rows.append("\t".join(cells + [f"{p:.3f}" for p in row]))
    lines = [header] + rows
    if served and len(probs):
        threshold = float(np.asarray(outputs["novelty_threshold"]).ravel()[0])
        lines.append(f"# novelty > {threshold:.3f} marks NOVEL (5 % of the validation images "
                     "are): the image may belong to none of the components")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", help="gRPC host:port of tensorflow_model_server (8500)")
    target.add_argument("--rest", help="REST base URL, e.g. http://localhost:8501")
    parser.add_argument("--images", required=True,
                        help="comma-separated image files (PNG/JPEG/BMP/GIF), folders of them "
                             "(searched recursively) or .npy batches [N, H, W(, C)]")
    parser.add_argument("--model", default="gmmgan_pcm", help="served model name")
    parser.add_argument("--image_shape", default="",
                        help="H,W,C the model was trained on (e.g. 28,28,1): converts the images "
                             "to it as --mode=assign does")
    args = parser.parse_args(argv)
    try:
        shape = parse_image_shape(args.image_shape)
        paths = [p for p in args.images.split(",") if p]
        image_input.check(paths)  # before TensorFlow: a missing file, a bad .npy
        loaded = load_images(paths, shape)
        images = validate_images(loaded.images, shape)
        try:
            outputs = (predict_grpc(args.server, images, args.model) if args.server
                       else predict_rest(args.rest, images, args.model))
        except Refused as e:
            if shape is None:
                e.args = (f"{e}; pass --image_shape=H,W,C (the training shape) to convert the "
                          "images to it as --mode=assign does",)
            raise
    except (ClientError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(loaded.names, outputs))
    loaded.print_skipped()
    return 0


if __name__ == "__main__":
    sys.exit(main())
