"""The losses of seed 000 as pure functions of tensors; each docstring states the equation.

Shapes: M real images, K components. `r` is the PCM's responsibility of the real images
r_ik = C(x_i)_k [M, K]; fake logits are [M, K] with entry (i, k) for x^_i^k = G(z_i^k).
Every log D is computed from logits with log-sigmoid, never as the log of a probability.
"""
from __future__ import annotations

import tensorflow as tf

JOINT_FLOOR = 1e-8


def mutual_information(p: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
    """I(p; q) of a batch of paired probability vectors, as in invariant information clustering.

    P = sym((1/N) sum_n p_n q_n^T) (a K x K joint), P_row and P_col its marginals,
    I = sum_{k,l} P_kl log(P_kl / (P_row,k P_col,l)). I = 0 for independent pairs, log K for
    identical uniform one-hot pairs. P is floored before the log (exact zeros add nothing).
    """
    joint = tf.matmul(p, q, transpose_a=True) / tf.cast(tf.shape(p)[0], p.dtype)
    joint = tf.maximum((joint + tf.transpose(joint)) / 2.0, JOINT_FLOOR)
    joint = joint / tf.reduce_sum(joint)
    row = tf.reduce_sum(joint, axis=1, keepdims=True)
    col = tf.reduce_sum(joint, axis=0, keepdims=True)
    return tf.reduce_sum(joint * (tf.math.log(joint) - tf.math.log(row) - tf.math.log(col)))


def soft_cross_entropy(target_probs: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """mean_n -sum_k t_nk log softmax(logits_n)_k."""
    return tf.reduce_mean(tf.reduce_sum(-target_probs * tf.nn.log_softmax(logits), axis=-1))


def latent_consistency_loss(w: tf.Tensor, fake_logits: tf.Tensor, mode: str) -> tf.Tensor:
    """L^{x^,z} (eq. 4) over all pairs (w(z_i^k), C(x^_i^k)), flattened to [M*K, K].

    mi: -I(w, C(x^)), permutation-invariant, so PCM index k need not mean component k;
    xent: cross-entropy of C(x^) against w(z), which pins index k to component k;
    mi+xent: their sum.
    """
    loss = tf.constant(0.0, fake_logits.dtype)
    if "mi" in mode.split("+"):
        loss -= mutual_information(w, tf.nn.softmax(fake_logits))
    if "xent" in mode.split("+"):
        loss += soft_cross_entropy(w, fake_logits)
    return loss


def real_fake_consistency_loss(real_probs: tf.Tensor, fake_probs: tf.Tensor, mode: str
                               ) -> tf.Tensor:
    """L^{x^,x} (eq. 5). The slides' formula is garbled: its summand does not depend on k, and
    x_i and x^ are independent draws, so a literal I(C(x_i), C(x^)) is zero in expectation. We read
    it as "responsibilities of real data must be consistent with those of generated data":

    paired_mi: pair x_i with the fake of the component C assigns it to, k_i = argmax_k C(x_i)
      (the choice is not differentiated), and maximise I(C(x_i), C(x^_i^{k_i}));
    marginal_kl: KL(mean_i C(x_i) || mean_{i,k} C(x^_i^k)) between batch-mean responsibilities;
    none: 0.
    real_probs [M, K], fake_probs [M, K, K] (the PCM's output on every fake of every real).
    """
    if mode == "none":
        return tf.constant(0.0, real_probs.dtype)
    if mode == "paired_mi":
        chosen = tf.stop_gradient(tf.argmax(real_probs, axis=-1))
        paired = tf.gather(fake_probs, chosen, axis=1, batch_dims=1)
        return -mutual_information(real_probs, paired)
    if mode == "marginal_kl":
        p = tf.reduce_mean(real_probs, axis=0)
        q = tf.reduce_mean(tf.reshape(fake_probs, [-1, tf.shape(fake_probs)[-1]]), axis=0)
        p, q = tf.maximum(p, JOINT_FLOOR), tf.maximum(q, JOINT_FLOOR)
        return tf.reduce_sum(p * (tf.math.log(p) - tf.math.log(q)))
    raise ValueError(f"unknown real_fake_consistency mode {mode!r}")


def adversarial_weights(r: tf.Tensor, per_component: bool) -> tf.Tensor:
    """Weights a_ik of the terms of eq. 6.

    Single logit: a_ik = r_ik / M (eq. 6 averaged over the batch; since sum_k r_ik = 1 the real
    term is the usual mean_i log D(x_i)). Per-component logits (mixture of GANs):
    a_ik = r_ik / sum_i' r_i'k, so head k sees the real images C assigns to component k,
    normalised over the batch, and no component is starved of real examples because C rarely
    uses it.
    """
    if per_component:
        return r / (tf.reduce_sum(r, axis=0, keepdims=True) + JOINT_FLOOR)
    return r / tf.cast(tf.shape(r)[0], r.dtype)


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor, r: tf.Tensor,
                       per_component: bool) -> tf.Tensor:
    """-L^adversarial (eq. 6), which D minimises (it maximises L^adversarial).

    Single logit, real_logits [M] (or [M, 1]):
      -(1/M) sum_i sum_k r_ik [log D(x_i) + log(1 - D(x^_i^k))]  (K * eq. 6, since Adam is
      invariant to the constant 1/K and sum_k r_ik = 1 keeps the real term's scale).
    Per-component logits, real_logits [M, K] (head k on x_i), fake_logits [M, K] (head k on x^_i^k):
      -(1/K) sum_k [sum_i a_ik log D_k(x_i) + (1/M) sum_i log(1 - D_k(x^_i^k))],
      with a_ik = r_ik / sum_i' r_i'k; every component's fakes count equally.
    The unweighted baselines (no PCM) pass uniform r_ik = 1/K.
    """
    if per_component:
        a = adversarial_weights(r, per_component=True)
        real_term = tf.reduce_sum(a * tf.math.log_sigmoid(real_logits), axis=0)
        fake_term = tf.reduce_mean(tf.math.log_sigmoid(-fake_logits), axis=0)
        return -tf.reduce_mean(real_term + fake_term)
    real_logits = tf.reshape(real_logits, [-1, 1])
    a = adversarial_weights(r, per_component=False)
    return -tf.reduce_sum(a * (tf.math.log_sigmoid(real_logits)
                               + tf.math.log_sigmoid(-fake_logits)))


def generator_loss(fake_logits: tf.Tensor, r: tf.Tensor, per_component: bool,
                   non_saturating: bool = True) -> tf.Tensor:
    """The generator side of eq. 6, which G minimises.

    minimax (literal): sum_k a_k(i) log(1 - D(x^_i^k)); non-saturating (default): the same with
    -log D(x^_i^k), which has strong gradients while D wins. Single logit: weights r_ik / M as in
    eq. 6; per-component logits: 1/(M K), every component's GAN counts equally.
    """
    term = (-tf.math.log_sigmoid(fake_logits) if non_saturating
            else tf.math.log_sigmoid(-fake_logits))
    if per_component:
        return tf.reduce_mean(term)
    return tf.reduce_sum(adversarial_weights(r, per_component=False) * term)


def augmentation_consistency_loss(real_probs: tf.Tensor, augmented_probs: tf.Tensor) -> tf.Tensor:
    """L^{x,x'} = -I(C(x); C(x')) over a batch of real images x and random augmentations x'
    (invariant information clustering on real data). Not in the slides: it gives the PCM a
    training signal from the real images themselves, whose variety the generator's fakes lack."""
    return -mutual_information(real_probs, augmented_probs)


def pseudo_label_loss(targets: tf.Tensor, real_logits: tf.Tensor) -> tf.Tensor:
    """L^{x,warm} = mean_i -sum_k t_ik log C(x_i)_k: the PCM on real images against the warm
    start's responsibilities t (warm_start.py). Not in the slides: without a term on real data
    the PCM <-> component loop drifts back to pixel-space clusters (docs/DESIGN.md)."""
    return soft_cross_entropy(targets, real_logits)


def self_label_loss(real_probs: tf.Tensor, augmented_logits: tf.Tensor, threshold: float
                    ) -> tf.Tensor:
    """L^{x,self} = (1/M) sum_i [max_k p_ik > t] * -log softmax(C(x_i'))_{argmax_k p_ik}: the PCM
    on an augmented view x_i' learns the PCM's own confident label of x_i (self-labelling, as
    in SCAN and FixMatch). p = C(x) is a target here (no gradient); images below the confidence
    threshold t add nothing, and the mean is over the whole batch."""
    real_probs = tf.stop_gradient(real_probs)
    confident = tf.cast(tf.reduce_max(real_probs, axis=-1) > threshold, augmented_logits.dtype)
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.argmax(real_probs, axis=-1),
                                                          augmented_logits)
    return tf.reduce_mean(confident * xent)


def neighbour_consistency_loss(anchor_probs: tf.Tensor, neighbour_probs: tf.Tensor,
                                entropy_weight: float) -> tf.Tensor:
    """SCAN's clustering loss (Van Gansbeke et al. 2020) for the warm start's neighbour stage:
    -(1/M) sum_i log <p_i, q_i> - w H(mean_i p_i), with p_i = C(x_i) and q_i = C(n_i) for a
    nearest neighbour n_i of x_i. The first term puts neighbours in one cluster with confidence;
    the entropy of the mean prediction keeps every cluster in use (w = 0: all in one)."""
    agreement = tf.reduce_sum(anchor_probs * neighbour_probs, axis=-1)
    mean_probs = tf.reduce_mean(anchor_probs, axis=0)
    entropy = -tf.reduce_sum(mean_probs * tf.math.log(tf.maximum(mean_probs, 1e-8)))
    return -tf.reduce_mean(tf.math.log(tf.maximum(agreement, 1e-8))) - entropy_weight * entropy


def mode_seeking_loss(fakes: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    """Within-component diversity (mode seeking, Mao et al. 2019), which G minimises:
    mean_{i,k} 1 / (mean|x^_ik - x^_jk| / mean|z_ik - z_jk| + 1e-5) over the pairs
    j = i - 1 (mod M) of the same component k. fakes [M, K, ...], z [M, K, d]. Collapsed
    components (equal images for different noise) make it large.

    With M < 2 there is no pair (i would be paired with itself, 0/0): the term is 0, with a
    zero gradient, so a batch of one image trains on the other losses alone.
    """
    fakes, z = tf.convert_to_tensor(fakes), tf.convert_to_tensor(z)

    def term():
        image_gap = tf.reduce_mean(tf.abs(fakes - tf.roll(fakes, 1, axis=0)),
                                   axis=list(range(2, fakes.shape.rank)))
        latent_gap = tf.reduce_mean(tf.abs(z - tf.roll(z, 1, axis=0)), axis=-1)
        return tf.reduce_mean(1.0 / (image_gap / latent_gap + 1e-5))

    return tf.cond(tf.shape(fakes)[0] >= 2, term, lambda: tf.zeros((), fakes.dtype))


# --- R1 (Mescheder et al. 2018): --r1_weight ------------------------------------------------
def squared_input_gradients(critic, images: tf.Tensor) -> tf.Tensor:
    """|grad_x f_h(x_n)|^2 [N, H] of every output (head) h of `critic` at every image n; called
    under an outer tape, differentiable in the critic's weights (a second-order gradient).

    One backward pass a head, of the head's sum over the batch: D treats images independently
    (no batch statistics), so that sum's gradient at x_n is head h's gradient at x_n alone.
    """
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(images)
        scores = critic(images, training=True)
        heads = [scores[:, h] for h in range(scores.shape[-1])]
    squared = [tf.reduce_sum(tf.reshape(tape.gradient(head, images) ** 2,
                                        [tf.shape(images)[0], -1]), axis=1) for head in heads]
    return tf.stack(squared, axis=1)


def r1_penalty(squared_gradients: tf.Tensor, weights: tf.Tensor | None, gamma: float
               ) -> tf.Tensor:
    """R1 = (gamma / 2) (1/H) sum_h sum_n a_nh |grad_x D_h(x_n)|^2 over real images x_n, which D
    minimises beside -L^adversarial: D's gradient on real data is pushed to zero.

    squared_gradients [N, H] from `squared_input_gradients`. a_nh is head h's weight of real
    image n, each column summing to 1: with per-component heads eq. 6's a_nk = r_nk / sum_n' r_n'k
    (`adversarial_weights`), so each head is penalised on the real images it judges (GAN k's R1
    on its own data), every head counting equally; `None` (one head) means a_n = 1/N, the
    paper's gamma/2 E_x |grad_x D(x)|^2.
    """
    if weights is None:
        per_head = tf.reduce_mean(squared_gradients, axis=0)
    else:
        per_head = tf.reduce_sum(weights * squared_gradients, axis=0)
    return 0.5 * gamma * tf.reduce_mean(per_head)


# --- Mode regulariser (Che et al. 2017): --reconstruction_weight --------------------------
def reconstruction_loss(images: tf.Tensor, reconstructions: tf.Tensor) -> tf.Tensor:
    """mean_i mean_p (G(z^_i) - x_i)_p^2: the squared error of G's reconstruction of each real
    image x_i from its code z^_i, averaged over the pixels p and the batch."""
    return tf.reduce_mean(tf.square(reconstructions - images))


def code_moment_penalty(codes: tf.Tensor) -> tf.Tensor:
    """(1/d) sum_j [m_j^2 + (v_j - 1)^2] with m_j, v_j the batch mean and (biased) variance of
    dimension j of the codes [N, d]: 0 when the codes have N(0, I)'s first two moments, so that
    the noise the encoder hands G is the noise G is sampled with."""
    mean, variance = tf.nn.moments(codes, axes=[0])
    return tf.reduce_mean(tf.square(mean) + tf.square(variance - 1.0))


# --- Nearest-fake coverage (IMLE, Li & Malik 2018): --coverage_weight ----------------------
def nearest_fake_loss(real_images: tf.Tensor, fakes: tf.Tensor, components: tf.Tensor,
                      pulls: tf.Tensor | None = None) -> tf.Tensor:
    """mean_i min_j mean_p (x^_j^{k_i} - x_i)_p^2, which G minimises: every real image x_i pulls
    the nearest of the M fakes of its component k_i (squared error over the pixels p), so a
    style of x_i's class that no fake is near draws a fake towards it, where the adversarial
    loss lets G leave rare styles out (implicit maximum likelihood inside a component).

    real_images [N, ...], fakes [M, K, ...] (x^_j^k), components [N] ints (k_i). The minimum's
    gradient reaches the nearest fake alone. `pulls` [N] (0 or 1) keeps only some real images'
    terms, the mean still over all N (as in self_label_loss).
    """
    candidates = tf.gather(fakes, components, axis=1)  # [M, N, ...]
    axes = list(range(2, candidates.shape.rank))
    distances = tf.reduce_mean(tf.square(candidates - real_images[None]), axis=axes)  # [M, N]
    nearest = tf.reduce_min(distances, axis=0)
    return tf.reduce_mean(nearest if pulls is None else pulls * nearest)


# --- WGAN-GP (Gulrajani et al. 2017): --gan_loss=wgan_gp and the adversarial MFA ------------
WGAN_GP_WEIGHT = 10.0


def gradient_penalty(critic, real: tf.Tensor, fake: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
    """E_n (|grad_xhat f(xhat_n)|_2 - 1)^2 with xhat = eps real + (1 - eps) fake.

    eps [N, 1, ...] (one uniform draw an example, broadcast over its values). The inner tape
    takes the gradient with respect to the interpolates; called under an outer tape, the result
    stays differentiable in the critic's weights (a second-order gradient).
    """
    xhat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(xhat)
        score = critic(xhat, training=True)
    grad = tape.gradient(score, xhat)
    return tf.reduce_mean((tf.norm(tf.reshape(grad, [tf.shape(grad)[0], -1]), axis=1) - 1.0) ** 2)


def wasserstein_critic_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor, penalty: tf.Tensor,
                            penalty_weight: float = WGAN_GP_WEIGHT) -> tf.Tensor:
    """E f(fake) - E f(real) + lambda * penalty, which the critic f minimises (lambda = 10)."""
    return (tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)
            + penalty_weight * penalty)


def wasserstein_generator_loss(fake_scores: tf.Tensor) -> tf.Tensor:
    """-E f(fake), which the generator minimises."""
    return -tf.reduce_mean(fake_scores)
